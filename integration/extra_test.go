//go:build integration

package integration

import "sync"

// Test beds that a test file starts for itself, beside the shared one of
// env_test.go (spam_test.go: spamd, rspamd, a second nobounce and its
// MTAs), register how to stop them here; teardown runs them first, last
// registered first, before the work folder is removed.
var extraTeardowns struct {
	sync.Mutex
	fns []func()
}

// onTeardown registers f to run at the end of the whole run.
func onTeardown(f func()) {
	extraTeardowns.Lock()
	defer extraTeardowns.Unlock()
	extraTeardowns.fns = append(extraTeardowns.fns, f)
}

// runExtraTeardowns runs what onTeardown registered, once.
func runExtraTeardowns() {
	extraTeardowns.Lock()
	fns := extraTeardowns.fns
	extraTeardowns.fns = nil
	extraTeardowns.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
