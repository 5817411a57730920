package config

// MIME is the [mime] table. (Filled in with its feature.)
type MIME struct{}

func defaultMIME() MIME { return MIME{} }

func (x MIME) validate(bad func(key, format string, args ...any)) {}
