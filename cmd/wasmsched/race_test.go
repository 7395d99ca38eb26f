//go:build race

package main

// raceEnabled: the race detector shadows memory several times over, so
// peak-RSS bounds do not apply.
const raceEnabled = true
