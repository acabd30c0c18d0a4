//go:build race

package dmarcrpt

// raceEnabled: the race detector slows decoding about tenfold.
const raceEnabled = true
