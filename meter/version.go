package meter

// Version identifies the rewrite Instrument performs. Caches of metered
// modules are keyed by it: change it whenever the output of Instrument
// changes for some input.
const Version = "7"
