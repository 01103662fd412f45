package host

// VerifyRestores makes every restore check that the chunks it copied
// back gave the snapshot back, and returns a function that reports how
// many did not and turns the checks off.
func VerifyRestores() (mismatches func() int64) {
	restoreMismatches.Store(0)
	verifyRestores.Store(true)
	return func() int64 {
		verifyRestores.Store(false)
		return restoreMismatches.Load()
	}
}
