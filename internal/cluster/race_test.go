//go:build linux && race

package cluster

// raceEnabled: the test binary runs with the race detector, and so do the
// moat processes it starts.
const raceEnabled = true
