// Package batv signs and verifies return paths with the "prvs" (simple
// private signature) scheme of Bounce Address Tag Validation,
// draft-levine-smtp-batv-01.
//
// A message sent with the envelope sender user@example.com goes out with
//
//	prvs=KDDDSSSSSS=user@example.com
//
// where, as the draft defines them (section 4.1, "prvs"):
//
//   - K is the key number, one decimal digit, so that a site can change its
//     secret and still recognize tags made with the previous one;
//   - DDD is the day the tag expires, as the number of days since
//     1970-01-01 UTC modulo 1000, in three decimal digits;
//   - SSSSSS is the first three bytes, in hexadecimal, of the HMAC-SHA1
//     (RFC 2104) keyed with the secret of key K, over the characters K, DDD
//     and the original address, concatenated ("0123user@example.com").
//
// A bounce (a message with the null sender) to a local address that does
// not carry a valid, unexpired tag answers mail this site never sent: it is
// backscatter and can be refused during the SMTP dialogue.
//
// Where the draft leaves a choice open, this package does what Exim's
// ${prvs} and ${prvscheck} do, so that tags interoperate with Exim given the
// same secret and key number: lower-case hex when signing (either case is
// accepted), the address hashed exactly as written in the tag, DDD the
// expiry day (Exim signs with 7 days ahead). Secrets are limited to 64
// bytes, as in Exim, whose HMAC does not hash longer keys first. One
// difference, on purpose: Exim accepts any expiry day that is not in the
// past (up to about 990 days ahead, because DDD wraps at 1000); Verify
// accepts only expiry days at most the signer's lifetime ahead, so that a
// tag older than 1000 days cannot pass for a new one.
//
// The package is pure: it does no I/O and reads no clock; the time is an
// argument.
package batv

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Prefix is the tag type of the simple private signature scheme; it is
// matched without regard to case.
const Prefix = "prvs="

// tagLen is len("KDDDSSSSSS").
const tagLen = 10

// MaxSecret is the longest secret, in bytes (Exim's limit).
const MaxSecret = 64

// MaxLifetime bounds a signer's lifetime, in days. DDD wraps at 1000, so a
// lifetime must stay far below it for an old tag never to look new.
const MaxLifetime = 365

// maxLocalPart is RFC 5321's limit on a local part (§4.5.3.1.1). A signed
// local part longer than this is not produced: some servers refuse it.
const maxLocalPart = 64

// Errors of Parse and Verify. Verify's errors wrap one of these.
var (
	ErrNotSigned  = errors.New("no prvs tag")
	ErrMalformed  = errors.New("malformed prvs tag")
	ErrUnknownKey = errors.New("prvs tag made with an unknown key")
	ErrBadHash    = errors.New("prvs tag signature does not match")
	ErrExpired    = errors.New("prvs tag expired")
)

// Key is one secret and the number K that names it in tags.
type Key struct {
	Number int    // 0-9
	Secret []byte // 1 to MaxSecret bytes
}

// Signer signs with its newest key and verifies with all of them.
type Signer struct {
	keys     []Key // keys[0] signs
	lifetime int   // days a tag stays valid
}

// New makes a Signer. keys[0] signs; every key verifies. lifetime is how
// many days a tag stays valid after the day it was made (Exim: 7), at
// least 1 and at most MaxLifetime.
func New(keys []Key, lifetime int) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("batv: no key")
	}
	if lifetime < 1 || lifetime > MaxLifetime {
		return nil, fmt.Errorf("batv: lifetime %d days out of range 1-%d", lifetime, MaxLifetime)
	}
	seen := map[int]bool{}
	for _, k := range keys {
		switch {
		case k.Number < 0 || k.Number > 9:
			return nil, fmt.Errorf("batv: key number %d is not one digit", k.Number)
		case len(k.Secret) == 0 || len(k.Secret) > MaxSecret:
			return nil, fmt.Errorf("batv: key %d: secret of %d bytes (want 1 to %d)", k.Number, len(k.Secret), MaxSecret)
		case seen[k.Number]:
			return nil, fmt.Errorf("batv: key number %d given twice", k.Number)
		}
		seen[k.Number] = true
	}
	return &Signer{keys: append([]Key(nil), keys...), lifetime: lifetime}, nil
}

// Lifetime is how many days a tag made now stays valid.
func (s *Signer) Lifetime() int { return s.lifetime }

// Day is t's day number as DDD counts it: whole days since 1970-01-01 UTC,
// modulo 1000.
func Day(t time.Time) int {
	d := t.Unix() / 86400
	if t.Unix() < 0 && t.Unix()%86400 != 0 {
		d-- // floor, for times before 1970 (tests only)
	}
	return int(((d % 1000) + 1000) % 1000)
}

// Hash is SSSSSS: the first three bytes of HMAC-SHA1(secret, K DDD addr),
// in lower-case hex.
func Hash(secret []byte, key, day int, addr string) string {
	return hex.EncodeToString(mac(secret, key, day, addr))
}

func mac(secret []byte, key, day int, addr string) []byte {
	h := hmac.New(sha1.New, secret)
	fmt.Fprintf(h, "%d%03d%s", key, day, addr)
	return h.Sum(nil)[:3]
}

// Tag is a parsed prvs address.
type Tag struct {
	Key     int    // K
	Day     int    // DDD: the expiry day modulo 1000
	Hash    string // SSSSSS as written (either case)
	Address string // the original address, loc-core@domain, as written
}

// String writes the tag back in its wire form.
func (t Tag) String() string {
	return fmt.Sprintf("prvs=%d%03d%s=%s", t.Key, t.Day, t.Hash, t.Address)
}

// IsSigned reports whether addr starts like a prvs address (it may still be
// malformed).
func IsSigned(addr string) bool {
	return len(addr) >= len(Prefix) && strings.EqualFold(addr[:len(Prefix)], Prefix)
}

// Parse splits a prvs address, "prvs=KDDDSSSSSS=loc-core@domain" (the
// prefix in any case), without verifying it. An address without the prefix
// is ErrNotSigned; one with the prefix but not the form is ErrMalformed.
func Parse(addr string) (Tag, error) {
	if !IsSigned(addr) {
		return Tag{}, ErrNotSigned
	}
	rest := addr[len(Prefix):]
	if len(rest) < tagLen+1 || rest[tagLen] != '=' {
		return Tag{}, ErrMalformed
	}
	tv := rest[:tagLen]
	var t Tag
	for i := 0; i < 4; i++ {
		if tv[i] < '0' || tv[i] > '9' {
			return Tag{}, ErrMalformed
		}
	}
	t.Key = int(tv[0] - '0')
	t.Day = int(tv[1]-'0')*100 + int(tv[2]-'0')*10 + int(tv[3]-'0')
	for i := 4; i < tagLen; i++ {
		if !isHex(tv[i]) {
			return Tag{}, ErrMalformed
		}
	}
	t.Hash = tv[4:]
	t.Address = rest[tagLen+1:]
	at := strings.LastIndexByte(t.Address, '@')
	if at <= 0 || at == len(t.Address)-1 {
		return Tag{}, ErrMalformed
	}
	return t, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// Sign returns addr with a tag made now with the newest key, expiring
// Lifetime days later. These are returned unchanged: the null sender,
// an address without a domain, one that already carries a prvs tag, and
// one whose signed local part would exceed RFC 5321's 64 octets.
func (s *Signer) Sign(addr string, now time.Time) string {
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || IsSigned(addr) || at+len(Prefix)+tagLen+1 > maxLocalPart {
		return addr
	}
	k := s.keys[0]
	day := Day(now.AddDate(0, 0, s.lifetime))
	return Tag{Key: k.Number, Day: day, Hash: Hash(k.Secret, k.Number, day, addr), Address: addr}.String()
}

// Verify checks a prvs address and returns the original address. The tag
// must name one of the signer's keys, its hash must match, and its expiry
// day must be today or at most Lifetime days ahead. The hash is checked
// over the address as written, then with the domain in lower case, then
// with all of it in lower case (MTAs on the way may have changed case).
func (s *Signer) Verify(addr string, now time.Time) (string, error) {
	t, err := Parse(addr)
	if err != nil {
		return "", err
	}
	var key *Key
	for i := range s.keys {
		if s.keys[i].Number == t.Key {
			key = &s.keys[i]
			break
		}
	}
	if key == nil {
		return "", fmt.Errorf("%w (key number %d)", ErrUnknownKey, t.Key)
	}
	got, err := hex.DecodeString(t.Hash)
	if err != nil {
		return "", ErrMalformed
	}
	ok := false
	for _, a := range caseVariants(t.Address) {
		if hmac.Equal(got, mac(key.Secret, t.Key, t.Day, a)) {
			ok = true
			break
		}
	}
	if !ok {
		return "", ErrBadHash
	}
	if ahead := (t.Day - Day(now) + 1000) % 1000; ahead > s.lifetime {
		return "", fmt.Errorf("%w (expiry day %03d, today %03d)", ErrExpired, t.Day, Day(now))
	}
	return t.Address, nil
}

// caseVariants lists the forms of addr whose hash Verify accepts.
func caseVariants(addr string) []string {
	at := strings.LastIndexByte(addr, '@')
	v := []string{addr}
	if d := addr[:at+1] + strings.ToLower(addr[at+1:]); d != addr {
		v = append(v, d)
	}
	if l := strings.ToLower(addr); l != v[len(v)-1] && l != addr {
		v = append(v, l)
	}
	return v
}

// Strip returns the original address of a prvs address, unverified, or
// addr itself when it carries no well-formed tag.
func Strip(addr string) string {
	if t, err := Parse(addr); err == nil {
		return t.Address
	}
	return addr
}
