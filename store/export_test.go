package store

// FailCommits makes every commit of s fail with err (nil: stop failing),
// for tests outside the package that need a store whose writes fail.
func FailCommits(s *Store, err error) {
	if err == nil {
		s.failHook.Store(nil)
		return
	}
	f := func() error { return err }
	s.failHook.Store(&f)
}
