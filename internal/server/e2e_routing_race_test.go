//go:build race

package server_test

// raceEnabled reports that the race detector is on: load tests shrink.
const raceEnabled = true
