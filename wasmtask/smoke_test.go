package wasmtask

import (
	"context"
	"testing"

	"github.com/wasmsched/wasmsched/scheduler"
)

func TestSpinGuestsComplete(t *testing.T) {
	e := newEnv(t, "spin.wasm", EngineConfig{}, scheduler.WithWorkers(2))
	const n = 30_000_000
	var hs []*scheduler.JoinHandle[Result]
	for i := 0; i < 4; i++ {
		hs = append(hs, Spawn(context.Background(), e.rt, e.mod, Options{Name: "spin", Export: "spin", Args: []uint64{n}}))
	}
	for _, h := range hs {
		r, err := waitGuest(t, h)
		if err != nil {
			t.Fatal(err)
		}
		if r.Values[0] != spinRef(n) {
			t.Fatalf("spin = %d, want %d", r.Values[0], spinRef(n))
		}
		t.Logf("%+v", r.Stats)
	}
	t.Logf("%+v", e.eng.Stats())
}
