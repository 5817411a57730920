// Package scan defines what a content scanner is to nobounce and fans one
// message out to several of them while it streams in from the MTA.
//
// A message is fed to scanners in wire form: the header block as received,
// an empty line, then the body with CRLF line ends, exactly as an SMTP client
// would have sent it after DATA (RFC 5321 §4.1.1.4, without dot-stuffing).
// Scanners consume it as it arrives; none keeps a whole copy in memory unless
// its protocol forces it to.
package scan

import (
	"context"
	"time"
)

// Envelope is what the MTA told us about a message before its content.
type Envelope struct {
	QueueID    string
	ClientAddr string // IP address of the SMTP client, "" when unknown
	ClientName string // reverse name as the MTA resolved it
	Helo       string
	From       string // envelope sender without angle brackets; "" is the null sender
	Rcpts      []string
	AuthUser   string // {auth_authen}, "" when not authenticated
	MTAName    string // the MTA's own host name (macro j)
}

// Status is the outcome of one scanner on one message.
type Status int

const (
	// Clean: the scanner looked at the whole message and found nothing.
	Clean Status = iota
	// Infected: the scanner found a threat; Result.Threat names it.
	Infected
	// Failed: the scanner could not give an answer; Result.Err says why.
	Failed
)

func (s Status) String() string {
	switch s {
	case Clean:
		return "clean"
	case Infected:
		return "infected"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Result is one scanner's answer about one message.
type Result struct {
	Scanner string        // Scanner.Name()
	Status  Status        //
	Threat  string        // scanner's own words for what it found (unsanitized)
	Err     error         // set when Status is Failed
	Server  string        // which server answered (address), for logs
	Elapsed time.Duration // from Begin to the answer

	// Scanners that judge rather than detect (spamd, rspamd, content rules)
	// give their advice with a Clean status: what they would do with the
	// message under their own configured policy, and why.
	Advice   Advice
	Reply    string // text for a Reject or TempFail advice (unsanitized); "" = the default text
	Code     int    // SMTP code for a Reject advice when not 550 (e.g. 552, 554); 0 = 550
	Enhanced string // RFC 3463 code for a Reject advice when not 5.7.1 (e.g. "5.6.0" for malformed MIME)
	Rule     string // which rule or symbol decided, for logs and `nobounce scan`
	Spam     *Spam  // spam scanners: the score behind the advice

	// Skipped, when not "", says why the scanner deliberately did not look
	// at this message ("too large", "authenticated sender"); the status is
	// Clean and the verdict's headers say it was not scanned.
	Skipped string
}

// Advice is a judging scanner's recommendation. Ordered by precedence.
type Advice int

const (
	AdviseNone     Advice = iota // nothing to say: accept
	AdviseTag                    // deliver, marked (X-Spam-Flag: YES, ...)
	AdviseTempFail               // 451 4.7.1: try again later (rspamd "soft reject", greylist)
	AdviseReject                 // 550 5.7.1
)

func (a Advice) String() string {
	switch a {
	case AdviseNone:
		return "none"
	case AdviseTag:
		return "tag"
	case AdviseTempFail:
		return "tempfail"
	case AdviseReject:
		return "reject"
	}
	return "unknown"
}

// Spam is a spam scanner's score of a message.
type Spam struct {
	Score    float64
	Required float64  // the scanner's threshold for "is spam"
	Symbols  []string // rule or symbol names that hit
	IsSpam   bool     // the scanner's own yes/no
}

// Scanner starts one scan per message.
type Scanner interface {
	// Name is a short stable label used in logs and replies ("clamd").
	Name() string
	// Begin starts scanning a message. It must not block on the network
	// for long: connection set-up may happen lazily on the first Write or
	// in a goroutine. ctx bounds the whole scan; it is cancelled on abort.
	Begin(ctx context.Context, env *Envelope) Job
}

// Job is one scan of one message in progress.
type Job interface {
	// Write streams the next bytes of the message in wire form. It may
	// block to apply back-pressure. After an error the job has failed and
	// wants no more input; Finish then reports the failure.
	Write(p []byte) (int, error)
	// Finish marks the end of the message and waits for the answer, at most
	// until ctx is done (then the result is Failed with ctx's error).
	Finish(ctx context.Context) Result
	// Abort abandons the scan and releases everything it holds. It is safe
	// to call after Finish and more than once.
	Abort()
}

// Health is what a health check learnt about one server of a scanner.
type Health struct {
	Addr    string        // the server's address as configured
	Up      bool          // it answered
	Err     error         // why not
	Latency time.Duration // how long the answer took
}

// Pinger is a scanner that can check its servers, for /healthz.
type Pinger interface {
	Scanner
	Ping(ctx context.Context) []Health
}
