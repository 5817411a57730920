package main

import "runtime/debug"

// version is the release this tree builds; CHANGELOG.md has its history.
const version = "0.1.0-dev"

// versionString adds the VCS revision the binary was built from, when known.
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return version
	}
	if dirty {
		rev += "+dirty"
	}
	return version + " (" + rev + ")"
}
