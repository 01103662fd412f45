package cache

// CanonicalSlow is canonicalSlow, for the differential fuzz target.
var CanonicalSlow = canonicalSlow
