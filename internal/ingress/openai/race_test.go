//go:build race

package openai

// raceEnabled: the race detector's instrumentation can add an allocation
// now and then, so allocation budgets get one of slack under -race.
const raceEnabled = true
