package instrument

import (
	"reflect"
	"testing"
)

// TestControlOps checks that control acts on no operator left out of
// controlOps (scan calls it only for those listed): for any other, the
// function's state is unchanged. (The facts decode notes for control,
// branch targets and function indices, come only from listed operators.)
func TestControlOps(t *testing.T) {
	w := &rewriter{m: &module{}, costs: defaultCosts}
	for op := 0; op < 256; op++ {
		if controlOps[op] {
			continue
		}
		fs := &funcState{}
		fs.reset(w, []byte{opNop, opEnd}, 0, 0)
		fs.begin()
		fs.frames = append(fs.frames, frame{kind: frTry, startReachable: true})
		fs.r.pos = 1
		before := *fs
		before.points = append([]point(nil), fs.points...)
		before.frames = append([]frame(nil), fs.frames...)
		fs.control(byte(op), 0)
		if !reflect.DeepEqual(before, *fs) {
			t.Errorf("control acts on %#x, which controlOps leaves out", op)
		}
	}
}
