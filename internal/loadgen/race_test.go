//go:build race

package loadgen

// The race detector slows everything several-fold, so rate assertions
// would measure it rather than the generator.
const raceEnabled = true
