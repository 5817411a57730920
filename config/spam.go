package config

// Spamd is the [spamd] table. (Filled in with its feature.)
type Spamd struct{}

func defaultSpamd() Spamd { return Spamd{} }

func (x Spamd) validate(bad func(key, format string, args ...any)) {}

// Rspamd is the [rspamd] table. (Filled in with its feature.)
type Rspamd struct{}

func defaultRspamd() Rspamd { return Rspamd{} }

func (x Rspamd) validate(bad func(key, format string, args ...any)) {}
