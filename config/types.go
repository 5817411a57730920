package config

import (
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a string in TOML: "30s", "5m",
// "1h30m" (time.ParseDuration). A bare integer is refused: it would be
// unclear whether it meant seconds or nanoseconds.
//
// It implements encoding.TextUnmarshaler and TextMarshaler, so it also
// works with flag.TextVar.
type Duration struct{ time.Duration }

// UnmarshalText parses a duration such as "30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("bad duration %q (want a number with a unit: \"30s\", \"5m\", \"1h30m\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as time.Duration.String does ("4m0s").
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// Size is a number of bytes. In TOML it is an integer (bytes) or a string
// with a unit: "512k", "25MiB", "10MB".
type Size int64

// Size units. k, M and G without "B" are binary, as in clamd.conf.
const (
	Byte Size = 1
	KiB  Size = 1 << 10
	MiB  Size = 1 << 20
	GiB  Size = 1 << 30
	KB   Size = 1000
	MB   Size = 1000 * KB
	GB   Size = 1000 * MB
)

// sizeUnits maps a lower-cased unit to its size.
var sizeUnits = map[string]Size{
	"": Byte, "b": Byte,
	"k": KiB, "kib": KiB, "kb": KB,
	"m": MiB, "mib": MiB, "mb": MB,
	"g": GiB, "gib": GiB, "gb": GB,
}

const sizeUnitList = "B, k, KiB, KB, M, MiB, MB, G, GiB, GB"

// ParseSize parses a whole number of bytes with an optional unit
// (case-insensitive, optionally after a space): "1048576", "512k",
// "25MiB", "10 MB". k/K/KiB, M/MiB and G/GiB are powers of 1024; KB, MB and
// GB powers of 1000.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("bad size %q (want a whole number of bytes with an optional unit: 1048576, \"512k\", \"25MiB\", \"10MB\")", s)
	}
	unit := strings.TrimSpace(t[i:])
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("bad size %q: unknown unit %q (want %s)", s, unit, sizeUnitList)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/int64(mult) {
		return 0, fmt.Errorf("bad size %q: too large", s)
	}
	return Size(n) * mult, nil
}

// UnmarshalText parses a size written as a string.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalText writes the size as String does.
func (s Size) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// String writes the size in the largest binary unit that divides it
// ("25MiB", "512KiB"), or in bytes ("1000").
func (s Size) String() string {
	for _, u := range []struct {
		size Size
		name string
	}{{GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}} {
		if s != 0 && s%u.size == 0 {
			return strconv.FormatInt(int64(s/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// parseSocketMode parses an octal permission such as "0660" and refuses
// bits beyond 0777 and world-writable modes.
func parseSocketMode(s string) (fs.FileMode, error) {
	if s == "" {
		return 0, fmt.Errorf("empty (want an octal mode such as \"0660\")")
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, fmt.Errorf("bad mode %q (want an octal mode from \"0000\" to \"0777\", such as \"0660\")", s)
	}
	m := fs.FileMode(n)
	if m&0o002 != 0 {
		return m, fmt.Errorf("mode %q is world-writable: any local user could talk to the milter (use \"0660\" with socket_group)", s)
	}
	return m, nil
}
