package config

// Recipient is the [recipient] table. (Filled in with its feature.)
type Recipient struct{}

func defaultRecipient() Recipient { return Recipient{} }

func (x Recipient) validate(bad func(key, format string, args ...any)) {}

// BATV is the [batv] table. (Filled in with its feature.)
type BATV struct{}

func defaultBATV() BATV { return BATV{} }

func (x BATV) validate(bad func(key, format string, args ...any)) {}

// Blocklist is the [blocklist] table. (Filled in with its feature.)
type Blocklist struct{}

func defaultBlocklist() Blocklist { return Blocklist{} }

func (x Blocklist) validate(bad func(key, format string, args ...any)) {}
