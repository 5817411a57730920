package batv

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// day returns noon UTC of day number n (days since 1970-01-01).
func day(n int64) time.Time { return time.Unix(n*86400+12*3600, 0).UTC() }

// The hashes below were computed outside Go, from the draft's definition
// alone, with
//
//	printf '%s%s%s' K DDD ADDRESS | openssl dgst -sha1 -hmac SECRET
//
// keeping the first six hex digits: they check this package against the
// text, not against itself.
func TestHashVectors(t *testing.T) {
	tests := []struct {
		secret string
		key    int
		day    int
		addr   string
		want   string
	}{
		{"secret", 0, 123, "user@example.com", "cfcd40"},
		{"another key", 1, 999, "alice@example.test", "ad2cae"},
		{"k", 9, 0, "bob.smith+tag@Example.Test", "2632c2"},
		{strings.Repeat("0123456789", 6) + "0123", 0, 31, "a@b", "5568c5"}, // a 64-byte secret
		{"secret", 0, 730, "user@example.com", "576ed6"},
		{"new secret", 3, 730, "user@example.com", "ac168f"},
		{"k1", 1, 3, "bob@example.test", "9770b4"},
	}
	for _, tt := range tests {
		if got := Hash([]byte(tt.secret), tt.key, tt.day, tt.addr); got != tt.want {
			t.Errorf("Hash(%q, %d, %03d, %q) = %s, want %s", tt.secret, tt.key, tt.day, tt.addr, got, tt.want)
		}
	}
}

func TestDay(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int
	}{
		{time.Unix(0, 0), 0},
		{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 723},                         // day 19723
		{time.Date(2024, 1, 1, 23, 59, 59, 0, time.UTC), 723},                      // same day
		{time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC), 724},                         // next day
		{time.Date(2024, 1, 1, 23, 30, 0, 0, time.FixedZone("UTC-2", -7200)), 724}, // UTC counts
		{time.Unix(-1, 0), 999},
		{day(20999), 999},
		{day(21000), 0},
	}
	for _, tt := range tests {
		if got := Day(tt.t); got != tt.want {
			t.Errorf("Day(%v) = %03d, want %03d", tt.t, got, tt.want)
		}
	}
}

// TestSignExim checks Sign against what Exim's ${prvs{ADDR}{SECRET}{K}}
// gives on the same day: expiry 7 days ahead, lower-case hex.
func TestSignExim(t *testing.T) {
	tests := []struct {
		keys []Key
		now  time.Time
		addr string
		want string
	}{
		// 2024-01-01 is day 19723; +7 = 19730 → DDD 730.
		{[]Key{{0, []byte("secret")}}, time.Date(2024, 1, 1, 15, 0, 0, 0, time.UTC), "user@example.com",
			"prvs=0730576ed6=user@example.com"},
		{[]Key{{3, []byte("new secret")}, {0, []byte("secret")}}, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "user@example.com",
			"prvs=3730ac168f=user@example.com"},
		// Day 20996 + 7 wraps to 003.
		{[]Key{{1, []byte("k1")}}, day(20996), "bob@example.test", "prvs=10039770b4=bob@example.test"},
	}
	for _, tt := range tests {
		s, err := New(tt.keys, 7)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Sign(tt.addr, tt.now); got != tt.want {
			t.Errorf("Sign(%q) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestSignLeavesAlone(t *testing.T) {
	s, _ := New([]Key{{0, []byte("secret")}}, 7)
	for _, addr := range []string{
		"",                                     // null sender
		"postmaster",                           // unqualified
		"user@",                                // no domain
		"@example.com",                         // no local part
		"prvs=0730576ed6=user@example.com",     // signed already
		"PRVS=0730576ED6=user@example.com",     // signed already, other case
		strings.Repeat("x", 49) + "@long.test", // 49+16 > 64 octets signed
	} {
		if got := s.Sign(addr, day(19723)); got != addr {
			t.Errorf("Sign(%q) = %q, want it unchanged", addr, got)
		}
	}
	if got := s.Sign(strings.Repeat("x", 48)+"@long.test", day(19723)); got == strings.Repeat("x", 48)+"@long.test" {
		t.Errorf("a 48-octet local part (64 signed) was not signed")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Tag
		err  error
	}{
		{"prvs=0730576ed6=user@example.com", Tag{0, 730, "576ed6", "user@example.com"}, nil},
		{"PRVS=9000ABCDEF=a=b@c.d", Tag{9, 0, "ABCDEF", "a=b@c.d"}, nil},
		{"Prvs=1999abcdef=\"q@x\"@c.d", Tag{1, 999, "abcdef", "\"q@x\"@c.d"}, nil},
		{"user@example.com", Tag{}, ErrNotSigned},
		{"", Tag{}, ErrNotSigned},
		{"prv=0730576ed6=user@example.com", Tag{}, ErrNotSigned},
		{"prvs=", Tag{}, ErrMalformed},
		{"prvs=0730576ed6", Tag{}, ErrMalformed},
		{"prvs=0730576ed6=", Tag{}, ErrMalformed},
		{"prvs=0730576ed6=user", Tag{}, ErrMalformed},
		{"prvs=0730576ed6=user@", Tag{}, ErrMalformed},
		{"prvs=0730576ed6=@example.com", Tag{}, ErrMalformed},
		{"prvs=0730576ed=user@example.com", Tag{}, ErrMalformed},   // five hex digits
		{"prvs=0730576ed6x=user@example.com", Tag{}, ErrMalformed}, // eleven characters
		{"prvs=a730576ed6=user@example.com", Tag{}, ErrMalformed},  // key not a digit
		{"prvs=07x0576ed6=user@example.com", Tag{}, ErrMalformed},  // day not digits
		{"prvs=0730576eg6=user@example.com", Tag{}, ErrMalformed},  // not hex
		{"prvs=0730576ed6-user@example.com", Tag{}, ErrMalformed},
		{"prvs=user/0730576ed6@example.com", Tag{}, ErrMalformed}, // Exim's old form
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil && !strings.EqualFold(got.String(), tt.in) {
			t.Errorf("Parse(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestVerify(t *testing.T) {
	old := Key{0, []byte("secret")}
	cur := Key{3, []byte("new secret")}
	s, err := New([]Key{cur, old}, 7)
	if err != nil {
		t.Fatal(err)
	}
	signedOn := day(19723) // 2024-01-01; tags expire on day 730
	fresh := s.Sign("user@example.com", signedOn)
	if fresh != "prvs=3730ac168f=user@example.com" {
		t.Fatalf("Sign = %q: the newest key must sign", fresh)
	}
	tests := []struct {
		name string
		addr string
		now  time.Time
		want string
		err  error
	}{
		{"fresh", fresh, signedOn, "user@example.com", nil},
		{"hex in upper case", "prvs=3730AC168F=user@example.com", signedOn, "user@example.com", nil},
		{"prefix in upper case", "PRVS=3730ac168f=user@example.com", signedOn, "user@example.com", nil},
		{"older key still verifies", "prvs=0730576ed6=user@example.com", signedOn, "user@example.com", nil},
		{"domain case changed on the way", "prvs=0730576ed6=user@EXAMPLE.com", signedOn, "user@EXAMPLE.com", nil},
		{"all in upper case", "PRVS=0730576ED6=USER@EXAMPLE.COM", signedOn, "USER@EXAMPLE.COM", nil},
		{"last valid day", fresh, day(19730), "user@example.com", nil},
		{"a day after expiry", fresh, day(19731), "", ErrExpired},
		// DDD repeats every 1000 days: a known limit of the format.
		{"1000 days later the same day number passes", fresh, day(20723), "user@example.com", nil},
		{"1000 days and one later", fresh, day(20731), "", ErrExpired},
		{"dated further ahead than the lifetime", fresh, day(19722), "", ErrExpired},
		{"unknown key number", "prvs=5730ac168f=user@example.com", signedOn, "", ErrUnknownKey},
		{"signed for another address", "prvs=3730ac168f=other@example.com", signedOn, "", ErrBadHash},
		{"day changed", "prvs=3731ac168f=user@example.com", signedOn, "", ErrBadHash},
		{"key number changed", "prvs=0730ac168f=user@example.com", signedOn, "", ErrBadHash},
		{"local part case changed", "prvs=3730ac168f=User@example.com", signedOn, "User@example.com", nil},
		{"local part changed", "prvs=3730ac168f=users@example.com", signedOn, "", ErrBadHash},
		{"not signed", "user@example.com", signedOn, "", ErrNotSigned},
		{"malformed", "prvs=3730ac168=user@example.com", signedOn, "", ErrMalformed},
	}
	for _, tt := range tests {
		got, err := s.Verify(tt.addr, tt.now)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("%s: Verify(%q) = %q, %v; want %q, %v", tt.name, tt.addr, got, err, tt.want, tt.err)
		}
	}
}

// TestKeyRotation walks a key change through: the new key signs at once,
// tags of the old one pass until it is dropped from the list.
func TestKeyRotation(t *testing.T) {
	k0 := Key{0, []byte("first")}
	k1 := Key{1, []byte("second")}
	now := day(19723)
	before, _ := New([]Key{k0}, 7)
	during, _ := New([]Key{k1, k0}, 7)
	after, _ := New([]Key{k1}, 7)

	oldTag := before.Sign("a@example.test", now)
	newTag := during.Sign("a@example.test", now)
	if oldTag[5] != '0' || newTag[5] != '1' {
		t.Fatalf("key numbers in %q and %q", oldTag, newTag)
	}
	tests := []struct {
		s    *Signer
		tag  string
		want error
	}{
		{before, oldTag, nil},
		{before, newTag, ErrUnknownKey},
		{during, oldTag, nil},
		{during, newTag, nil},
		{after, oldTag, ErrUnknownKey},
		{after, newTag, nil},
	}
	for i, tt := range tests {
		if _, err := tt.s.Verify(tt.tag, now); !errors.Is(err, tt.want) {
			t.Errorf("case %d: Verify(%q) = %v, want %v", i, tt.tag, err, tt.want)
		}
	}
	// Same number, new secret: the old tags no longer verify.
	reused, _ := New([]Key{{0, []byte("other")}}, 7)
	if _, err := reused.Verify(oldTag, now); !errors.Is(err, ErrBadHash) {
		t.Errorf("key 0 with a new secret: Verify(%q) = %v, want ErrBadHash", oldTag, err)
	}
}

func TestLifetime(t *testing.T) {
	for _, life := range []int{1, 7, 30} {
		s, err := New([]Key{{2, []byte("s")}}, life)
		if err != nil {
			t.Fatal(err)
		}
		for _, start := range []int64{19723, 20990, 20999} { // the last two wrap DDD
			tag := s.Sign("x@example.test", day(start))
			for d := int64(0); d <= int64(life)+1; d++ {
				_, err := s.Verify(tag, day(start+d))
				if valid := d <= int64(life); valid != (err == nil) {
					t.Errorf("lifetime %d, signed on day %d, checked %d days later: err %v", life, start, d, err)
				}
			}
		}
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		keys []Key
		life int
		ok   bool
	}{
		{[]Key{{0, []byte("s")}}, 7, true},
		{[]Key{{9, []byte(strings.Repeat("s", MaxSecret))}}, MaxLifetime, true},
		{nil, 7, false},
		{[]Key{{0, []byte("s")}}, 0, false},
		{[]Key{{0, []byte("s")}}, MaxLifetime + 1, false},
		{[]Key{{10, []byte("s")}}, 7, false},
		{[]Key{{-1, []byte("s")}}, 7, false},
		{[]Key{{0, nil}}, 7, false},
		{[]Key{{0, []byte(strings.Repeat("s", MaxSecret+1))}}, 7, false},
		{[]Key{{0, []byte("a")}, {0, []byte("b")}}, 7, false},
	}
	for i, tt := range tests {
		if _, err := New(tt.keys, tt.life); (err == nil) != tt.ok {
			t.Errorf("case %d: New = %v, want ok=%v", i, err, tt.ok)
		}
	}
}

func TestStrip(t *testing.T) {
	for in, want := range map[string]string{
		"prvs=0730576ed6=user@example.com": "user@example.com",
		"user@example.com":                 "user@example.com",
		"prvs=bad=user@example.com":        "prvs=bad=user@example.com",
	} {
		if got := Strip(in); got != want {
			t.Errorf("Strip(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"prvs=0730576ed6=user@example.com", "PRVS=9000ABCDEF=a=b@c.d", "prvs=", "prvs=0730576ed6=",
		"user@example.com", "prvs=0730576ed6=@x", "prvs=0730576ed6=x@", "\x00prvs=",
	} {
		f.Add(s)
	}
	s, _ := New([]Key{{0, []byte("secret")}, {1, []byte("other")}}, 7)
	now := day(19723)
	f.Fuzz(func(t *testing.T, in string) {
		tag, err := Parse(in)
		if err == nil {
			if tag.Key < 0 || tag.Key > 9 || tag.Day < 0 || tag.Day > 999 || len(tag.Hash) != 6 {
				t.Fatalf("Parse(%q) = %+v", in, tag)
			}
			if !strings.EqualFold(tag.String(), in) {
				t.Fatalf("Parse(%q).String() = %q", in, tag.String())
			}
			if Strip(in) != tag.Address {
				t.Fatalf("Strip(%q) = %q, want %q", in, Strip(in), tag.Address)
			}
		} else if !errors.Is(err, ErrNotSigned) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Parse(%q) error %v", in, err)
		}
		plain, verr := s.Verify(in, now)
		if verr == nil && (err != nil || plain != tag.Address) {
			t.Fatalf("Verify(%q) = %q, but Parse gave %+v, %v", in, plain, tag, err)
		}
		// Whatever signs, verifies back to itself.
		signed := s.Sign(in, now)
		if signed != in {
			if got, err := s.Verify(signed, now); err != nil || got != in {
				t.Fatalf("Verify(Sign(%q) = %q) = %q, %v", in, signed, got, err)
			}
		}
	})
}
