package milter

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/batv"
	"github.com/nobounce/nobounce/config"
	"github.com/nobounce/nobounce/dnsbl"
	"github.com/nobounce/nobounce/dnsbl/dnstest"
	"github.com/nobounce/nobounce/recipient"
	"github.com/nobounce/nobounce/recipient/smtptest"
	"github.com/nobounce/nobounce/sockaddr"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// listChecker checks example.test against a list file: alice, bob,
// postmaster and boss exist.
func listChecker(t *testing.T) *recipient.Checker {
	t.Helper()
	p := filepath.Join(t.TempDir(), "recipients")
	os.WriteFile(p, []byte("alice@example.test\nbob@example.test\npostmaster@example.test\nboss@example.test\n"), 0o644)
	l, err := recipient.LoadList(p, discard)
	if err != nil {
		t.Fatal(err)
	}
	return recipient.New(recipient.Options{Domains: []string{"example.test"}, List: l, Logger: discard})
}

// envStep is one envelope command and the answer wanted: "accept" or the
// start of the reply.
type envStep struct {
	cmd  string // "MAIL" or "RCPT"
	arg  string
	want string
}

// runEnvelope sends the steps on s and checks each answer.
func runEnvelope(t *testing.T, s *gomilter.ClientSession, steps []envStep) {
	t.Helper()
	for i, st := range steps {
		var act *gomilter.Action
		var err error
		switch st.cmd {
		case "MAIL":
			act, err = s.Mail(st.arg, nil)
		case "RCPT":
			act, err = s.Rcpt(st.arg, nil)
		case "ABORT":
			if err := s.Abort(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d %s %s: %v", i, st.cmd, st.arg, err)
		}
		if got := replyOf(act); !strings.HasPrefix(got, st.want) {
			t.Errorf("step %d %s %s: %q, want %q", i, st.cmd, st.arg, got, st.want)
		}
	}
}

// finish ends a message whose envelope was sent and returns the end of
// message answer and modifications.
func finish(t *testing.T, s *gomilter.ClientSession) (*gomilter.Action, []gomilter.ModifyAction) {
	t.Helper()
	mustContinue(t, "HEADER", func() (*gomilter.Action, error) { return s.HeaderField("Subject", "x") })
	mustContinue(t, "EOH", s.HeaderEnd)
	mustContinue(t, "BODY", func() (*gomilter.Action, error) { return s.BodyChunk([]byte("body\r\n")) })
	mods, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	return act, mods
}

func TestRecipientUnknownRefused(t *testing.T) {
	st := settings(&recScanner{})
	st.Recipient.Checker = listChecker(t)
	_, c := startServer(t, Options{}, st)
	s := connect(t, c)
	runEnvelope(t, s, []envStep{
		{"MAIL", "sender@remote.test", "accept"},
		{"RCPT", "alice@example.test", "accept"},
		{"RCPT", "nobody@example.test", "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown"},
		{"RCPT", "Bob@EXAMPLE.test", "accept"},
		{"RCPT", "someone@remote.test", "accept"}, // not a local domain
	})
	if act, _ := finish(t, s); replyOf(act) != "accept" {
		t.Fatalf("end of message: %q", replyOf(act))
	}
	// The next transaction on the same connection is judged alike: the
	// custom replies kept the session (no bare reject replaced it).
	runEnvelope(t, s, []envStep{
		{"MAIL", "other@remote.test", "accept"},
		{"RCPT", "nobody@example.test", "550 5.1.1"},
		{"RCPT", "alice@example.test", "accept"},
	})
	finish(t, s)
}

func TestRecipientCallout(t *testing.T) {
	be := smtptest.Start(t, smtptest.Config{Users: []string{"alice@example.test"}})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := sockaddr.Addr{Network: "tcp", Address: ln.Addr().String()}
	ln.Close()
	st := settings(&recScanner{})
	st.Recipient.Checker = recipient.New(recipient.Options{
		Backends: map[string]sockaddr.Addr{"example.test": be.Addr, "down.test": down},
		Cache:    recipient.NewCache(recipient.DefaultCacheOptions), CatchAllCheck: true, Logger: discard,
	})
	_, c := startServer(t, Options{}, st)
	s := connect(t, c)
	runEnvelope(t, s, []envStep{
		{"MAIL", "sender@remote.test", "accept"},
		{"RCPT", "alice@example.test", "accept"},
		{"RCPT", "nobody@example.test", "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table"},
		{"RCPT", "nobody@example.test", "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table (previously cached response)"},
		{"RCPT", "alice@down.test", "451 4.4.3 <alice@down.test>: Recipient address verification failed, try again later"},
	})
	finish(t, s)
	if n := be.Connections(); n != 2 {
		t.Errorf("backend saw %d callouts, want 2 (alice with the probe, nobody once)", n)
	}
}

func TestRecipientGroups(t *testing.T) {
	st := settings(&recScanner{})
	st.Recipient.Checker = listChecker(t)
	st.Recipient.Groups = recipient.NewGroups(map[string]string{"example.test": "staff", "boss@example.test": "vip"})
	_, c := startServer(t, Options{}, st)
	s := connect(t, c)
	other := "452 4.5.3 <boss@example.test>: Too many recipients: this one has another delivery policy, send it in a separate transaction"
	runEnvelope(t, s, []envStep{
		{"MAIL", "sender@remote.test", "accept"},
		{"RCPT", "nobody@example.test", "550 5.1.1"}, // refused: does not set the group
		{"RCPT", "alice@example.test", "accept"},     // the transaction is "staff"
		{"RCPT", "boss@example.test", other},
		{"RCPT", "bob@example.test", "accept"},
		{"RCPT", "x@remote.test", "452 4.5.3"}, // default group
	})
	finish(t, s)
	// The client retries boss in a transaction of its own.
	runEnvelope(t, s, []envStep{
		{"MAIL", "sender@remote.test", "accept"},
		{"RCPT", "boss@example.test", "accept"},
		{"RCPT", "alice@example.test", "452 4.5.3 <alice@example.test>"},
	})
	finish(t, s)
	// An aborted transaction leaves no group behind.
	runEnvelope(t, s, []envStep{
		{"MAIL", "sender@remote.test", "accept"},
		{"RCPT", "alice@example.test", "accept"},
		{"ABORT", "", ""},
		{"MAIL", "sender@remote.test", "accept"},
		{"RCPT", "boss@example.test", "accept"},
	})
}

// testBATV makes BATV settings for example.test at a fixed time.
func testBATV(t *testing.T, now time.Time) *BATVSettings {
	t.Helper()
	signer, err := batv.New([]batv.Key{{Number: 1, Secret: []byte("new")}, {Number: 0, Secret: []byte("old")}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	return &BATVSettings{Signer: signer, Domains: map[string]bool{"example.test": true}, SignAuthenticated: true,
		Networks: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
		Exempt:   map[string]bool{"postmaster": true}, Now: func() time.Time { return now }}
}

func TestBATVInbound(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	b := testBATV(t, now)
	st := settings(&recScanner{})
	st.Recipient.Checker = listChecker(t)
	st.Recipient.BATV = b
	_, c := startServer(t, Options{}, st)
	s := connect(t, c)

	valid := b.Signer.Sign("alice@example.test", now)
	oldKey, _ := batv.New([]batv.Key{{Number: 0, Secret: []byte("old")}}, 7)
	validOld := oldKey.Sign("bob@example.test", now.AddDate(0, 0, -3))
	expired := b.Signer.Sign("alice@example.test", now.AddDate(0, 0, -8))
	forged := strings.Replace(valid, "alice@", "bob@", 1)
	unknownUser := b.Signer.Sign("nobody@example.test", now)
	never := "550 5.7.1 <alice@example.test>: This address never sent the message you are bouncing"

	runEnvelope(t, s, []envStep{
		{"MAIL", "", "accept"},
		{"RCPT", "alice@example.test", never},
		{"RCPT", expired, "550 5.7.1 <" + expired + ">: This address never sent the message you are answering: its BATV signature has expired"},
		{"RCPT", forged, "550 5.7.1 <" + forged + ">: This address never sent the message you are answering: its BATV signature is not ours"},
		{"RCPT", "prvs=5730aaaaaa=alice@example.test", "550 5.7.1"}, // unknown key number
		{"RCPT", unknownUser, "550 5.1.1 <nobody@example.test>"},    // a valid tag does not make a user
		{"RCPT", "postmaster@example.test", "accept"},               // exempt
		{"RCPT", "x@remote.test", "accept"},                         // not a BATV domain
		{"RCPT", valid, "accept"},
		{"RCPT", validOld, "accept"}, // the older key still verifies
	})
	_, mods := finish(t, s)
	var del, add []string
	for _, m := range mods {
		switch m.Code {
		case gomilter.ActDelRcpt:
			del = append(del, m.Rcpt)
		case gomilter.ActAddRcpt:
			add = append(add, m.Rcpt)
		case gomilter.ActChangeFrom:
			t.Errorf("a bounce got its sender changed to %q", m.From)
		}
	}
	wantDel := []string{"<" + valid + ">", "<" + validOld + ">"}
	wantAdd := []string{"<alice@example.test>", "<bob@example.test>"}
	if strings.Join(del, " ") != strings.Join(wantDel, " ") || strings.Join(add, " ") != strings.Join(wantAdd, " ") {
		t.Errorf("recipients deleted %q, added %q; want %q, %q", del, add, wantDel, wantAdd)
	}

	// Mail that is not a bounce goes to untagged addresses as usual; a
	// tagged address is checked (an autoresponder answering a tagged
	// return path) and unsigned.
	runEnvelope(t, s, []envStep{
		{"MAIL", "someone@remote.test", "accept"},
		{"RCPT", "alice@example.test", "accept"},
		{"RCPT", expired, "550 5.7.1"},
		{"RCPT", valid, "accept"},
	})
	_, mods = finish(t, s)
	unsigned := false
	for _, m := range mods {
		if m.Code == gomilter.ActDelRcpt && m.Rcpt == "<"+valid+">" {
			unsigned = true
		}
	}
	if !unsigned {
		t.Errorf("tagged recipient of a non-bounce not unsigned: mods %+v", mods)
	}
}

func TestBATVOutbound(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	b := testBATV(t, now)
	signed := b.Signer.Sign("alice@example.test", now)
	tests := []struct {
		name   string
		client string
		auth   string
		from   string
		want   string // "" = no ChangeFrom
	}{
		{"authenticated", "192.0.2.7", "alice", "alice@example.test", "<" + signed + ">"},
		{"trusted network", "198.51.100.20", "", "alice@example.test", "<" + signed + ">"},
		{"trusted network, IPv4-mapped", "::ffff:198.51.100.20", "", "alice@example.test", "<" + signed + ">"},
		{"outsider", "192.0.2.7", "", "alice@example.test", ""},
		{"another domain", "198.51.100.20", "alice", "alice@remote.test", ""},
		{"already signed", "198.51.100.20", "alice", signed, ""},
		{"null sender", "198.51.100.20", "alice", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := settings(&recScanner{})
			st.Recipient.BATV = b
			_, c := startServer(t, Options{}, st)
			s, err := c.Session()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			mustContinue(t, "CONNECT", func() (*gomilter.Action, error) {
				return s.Conn("client.example", gomilter.FamilyInet, 4321, tt.client)
			})
			if tt.auth != "" {
				if err := s.Macros(gomilter.CodeMail, "{auth_authen}", tt.auth); err != nil {
					t.Fatal(err)
				}
			}
			rcpt := "bob@remote.test"
			if tt.from == "" {
				rcpt = "postmaster@example.test"
			}
			runEnvelope(t, s, []envStep{{"MAIL", tt.from, "accept"}, {"RCPT", rcpt, "accept"}})
			act, mods := finish(t, s)
			if replyOf(act) != "accept" {
				t.Fatalf("end of message %q", replyOf(act))
			}
			got := ""
			for _, m := range mods {
				if m.Code == gomilter.ActChangeFrom {
					got = m.From
				}
			}
			if got != tt.want {
				t.Errorf("ChangeFrom %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBlocklist(t *testing.T) {
	dns := dnstest.Start(t, &dnstest.Server{Records: map[string]net.IP{
		"7.2.0.192.bl.test.": net.IPv4(127, 0, 0, 2),
	}})
	silent := dnstest.Start(t, &dnstest.Server{Silent: true})
	tests := []struct {
		name   string
		server string
		client string
		from   string
		want   string
	}{
		{"listed bounce", dns.Addr, "192.0.2.7", "", "550 5.7.1 Bounces from 192.0.2.7 are refused: it is listed in bl.test"},
		{"listed, not a bounce", dns.Addr, "192.0.2.7", "a@remote.test", "accept"},
		{"unlisted bounce", dns.Addr, "192.0.2.8", "", "accept"},
		{"DNS down: fail open", silent.Addr, "192.0.2.7", "", "accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bl, err := dnsbl.New(dnsbl.Options{Zones: []string{"bl.test"}, Server: tt.server, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			st := settings(&recScanner{})
			st.Recipient.Blocklist = bl
			_, c := startServer(t, Options{}, st)
			s, err := c.Session()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			mustContinue(t, "CONNECT", func() (*gomilter.Action, error) {
				return s.Conn("client.example", gomilter.FamilyInet, 4321, tt.client)
			})
			start := time.Now()
			runEnvelope(t, s, []envStep{{"MAIL", tt.from, tt.want}})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("MAIL FROM took %v", d)
			}
			if tt.want == "accept" {
				runEnvelope(t, s, []envStep{{"RCPT", "alice@example.test", "accept"}})
				finish(t, s)
			}
		})
	}
}

func TestBuildRecipient(t *testing.T) {
	list := filepath.Join(t.TempDir(), "list")
	os.WriteFile(list, []byte("alice@example.test\n"), 0o644)
	cfg := config.Default()
	cfg.Recipient.Domains = []string{"example.test"}
	cfg.Recipient.List = list
	cfg.Recipient.Verify = []string{"other.test=inet:127.0.0.1:25"}
	cfg.Recipient.Groups = []string{"example.test=staff"}
	cfg.BATV.Domains = []string{"Example.TEST"}
	cfg.BATV.Keys = []string{"0=secret"}
	cfg.BATV.Networks = []string{"192.0.2.0/24"}
	cfg.Blocklist.Zones = []string{"ips.backscatterer.org"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	caches := &RecipientCaches{}
	rs, err := BuildRecipient(cfg, discard, nil, caches)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Checker == nil || rs.Groups == nil || rs.Blocklist == nil || rs.BATV == nil {
		t.Fatalf("parts missing: %+v", rs)
	}
	if !rs.Checker.IsLocal("x@other.test") || !rs.Checker.IsLocal("x@example.test") || rs.Checker.IsLocal("x@remote.test") {
		t.Error("local domains wrong")
	}
	if !rs.BATV.ours("a@example.test") || !rs.BATV.trusted("192.0.2.9", "") || rs.BATV.trusted("192.0.3.9", "") {
		t.Errorf("BATV settings wrong: %+v", rs.BATV)
	}
	// A second build with the same cache options shares the cache.
	rs2, _ := BuildRecipient(cfg, discard, nil, caches)
	if rs2.Checker.Cache() != rs.Checker.Cache() {
		t.Error("a rebuild made a new cache: a reload would forget every callout answer")
	}
	// Defaults: everything off.
	rs3, err := BuildRecipient(config.Default(), discard, nil, caches)
	if err != nil || rs3.Checker != nil || rs3.Groups != nil || rs3.Blocklist != nil || rs3.BATV != nil {
		t.Errorf("defaults built %+v, %v; want everything off", rs3, err)
	}
	// A list that can't be read fails the build (a reload keeps the old settings).
	cfg.Recipient.List = list + ".missing"
	if _, err := BuildRecipient(cfg, discard, nil, caches); err == nil {
		t.Error("a missing list file built")
	}
}
