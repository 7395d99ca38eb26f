package compare

import (
	"context"

	icolor "image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium finds a Chromium (or Chrome) binary: $WASMSCHED_CHROMIUM, else
// the usual names in PATH.
func chromium() (string, []string) {
	names := []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell"}
	if p := os.Getenv("WASMSCHED_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", names
}

// TestRenderHTML renders a report in headless Chromium, as
// scripts/render-report.sh does, and checks the picture: the page is
// drawn (not blank), the charts' mode colours and the disturbed-machine
// warning's colour are on it. The PNG is kept with go test -artifacts
// (testing.T.ArtifactDir), to look at. CI has no Chromium: the test
// skips, saying so.
func TestRenderHTML(t *testing.T) {
	bin, tried := chromium()
	if bin == "" {
		t.Skipf("no Chromium to render the HTML report with (looked for %s in PATH; set WASMSCHED_CHROMIUM to a binary): "+
			"install one (apt-get install chromium) to run this test", strings.Join(tried, ", "))
	}
	if testing.Short() {
		t.Skip("renders the HTML report in headless Chromium (seconds, a few hundred MB): not in -short mode")
	}
	dir := t.ArtifactDir()
	page, shot := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.png")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteHTML(f, sampleReport()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// The flags of scripts/render-report.sh: no sandbox, GPU, network or
	// first-run work, a profile of its own.
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1200,3000", "file://"+page)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	g, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	img, err := png.Decode(g)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("rendered %s to %s", page, shot)
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 3000 {
		t.Errorf("screenshot is %v, want 1200x3000", b)
	}
	want := map[string]icolor.RGBA{
		"immediate-lifo's colour": {0xd1, 0x49, 0x5b, 0xff},
		"deferred's colour":       {0x00, 0x79, 0x8c, 0xff},
		"the warning's colour":    {0xff, 0xf1, 0xd6, 0xff},
	}
	found := map[string]int{}
	nonWhite := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := icolor.RGBAModel.Convert(img.At(x, y)).(icolor.RGBA)
			if c != (icolor.RGBA{0xff, 0xff, 0xff, 0xff}) {
				nonWhite++
			}
			for name, w := range want {
				if near(c, w) {
					found[name]++
				}
			}
		}
	}
	if nonWhite < b.Dx()*b.Dy()/50 {
		t.Errorf("the page looks blank: %d non-white pixels", nonWhite)
	}
	for name := range want {
		if found[name] < 200 {
			t.Errorf("%s is (almost) not on the page: %d pixels", name, found[name])
		}
	}
}

func near(a, b icolor.RGBA) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.R, b.R) <= 6 && d(a.G, b.G) <= 6 && d(a.B, b.B) <= 6
}
