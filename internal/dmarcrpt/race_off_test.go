//go:build !race

package dmarcrpt

const raceEnabled = false
