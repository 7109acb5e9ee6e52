//go:build race

package e2e

// raceEnabled: the tests run under -race, so the harness builds mcptrail with
// -race too, and a data race in the gateway under real traffic fails a test.
const raceEnabled = true
