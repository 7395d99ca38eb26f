//go:build !race

package wasmtask

const raceEnabled = false
