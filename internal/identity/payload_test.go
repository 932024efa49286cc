package identity

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/monostack/monostack/internal/fernet"
)

func samplePayloads() map[string]*payload {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	t1 := t0.Add(time.Hour)
	a1, a2 := newAuditID(), newAuditID()
	return map[string]*payload{
		"unscoped":  {Methods: []string{"password"}, UserID: newID(), IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1}},
		"project":   {Methods: []string{"password"}, UserID: newID(), ProjectID: newID(), IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1}},
		"domain":    {Methods: []string{"password"}, UserID: newID(), DomainID: newID(), IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1}},
		"default":   {Methods: []string{"password"}, UserID: newID(), DomainID: "default", IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1}},
		"system":    {Methods: []string{"password"}, UserID: newID(), System: true, IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1}},
		"rescoped":  {Methods: []string{"password", "token"}, UserID: newID(), ProjectID: newID(), IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1, a2}},
		"app cred":  {Methods: []string{"application_credential"}, UserID: newID(), ProjectID: newID(), AppCredID: newID(), IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1}},
		"long ids":  {Methods: []string{"password"}, UserID: strings.Repeat("u", 64), DomainID: strings.Repeat("d", 64), IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1, a2}},
		"upper hex": {Methods: []string{"password"}, UserID: strings.ToUpper(newID()), IssuedAt: t0, ExpiresAt: t1, AuditIDs: []string{a1}},
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	key, err := fernet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range samplePayloads() {
		t.Run(name, func(t *testing.T) {
			got, err := unmarshalPayload(p.marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
			}
			tok, err := fernet.Encrypt(key, p.marshal(), p.IssuedAt)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) >= 255 && name != "long ids" { // ids we make or accept are 32 hex digits or "default"
				t.Errorf("token of %d characters", len(tok))
			}
		})
	}
}

// Hex ids are packed into 16 bytes; anything else is kept as it is.
func TestPayloadIDPacking(t *testing.T) {
	hex := newID()
	b := appendID(nil, hex)
	if len(b) != 17 || b[0] != 0xff {
		t.Errorf("hex id packed into %d bytes", len(b))
	}
	for _, id := range []string{"", "default", strings.ToUpper(hex), hex[:31] + "g", strings.Repeat("x", 64)} {
		b := appendID(nil, id)
		got, rest, err := readID(b)
		if err != nil || got != id || len(rest) != 0 {
			t.Errorf("id %q: got %q, rest %d, err %v", id, got, len(rest), err)
		}
	}
}

func TestPayloadMalformed(t *testing.T) {
	p := samplePayloads()["app cred"]
	good := p.marshal()
	// Every truncation, and every extension, is refused, never a panic.
	for n := 0; n < len(good); n++ {
		if _, err := unmarshalPayload(good[:n]); err == nil {
			t.Errorf("payload truncated to %d bytes accepted", n)
		}
	}
	if _, err := unmarshalPayload(append(good, 0)); err == nil {
		t.Errorf("payload with a trailing byte accepted")
	}
	bad := append([]byte{}, good...)
	bad[0] = payloadVersion + 1
	if _, err := unmarshalPayload(bad); err == nil {
		t.Errorf("unknown payload version accepted")
	}
	bad = append([]byte{}, good...)
	bad[1] = 9
	if _, err := unmarshalPayload(bad); err == nil {
		t.Errorf("unknown scope accepted")
	}
}

func FuzzUnmarshalPayload(f *testing.F) {
	for _, p := range samplePayloads() {
		f.Add(p.marshal())
	}
	f.Add([]byte{})
	f.Add([]byte{payloadVersion, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := unmarshalPayload(b)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a payload that decodes the same.
		again, err := unmarshalPayload(p.marshal())
		if err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("re-encoding %x: %+v, %v", b, again, err)
		}
	})
}

// A token whose payload does not decode is simply not found.
func TestUndecodablePayload(t *testing.T) {
	tc := newTestCloud(t)
	for _, raw := range [][]byte{{}, {payloadVersion}, {payloadVersion, 1, 1, 0, 0}, []byte("not a payload at all, just text")} {
		tok, err := fernet.Encrypt(tc.keys.Primary(), raw, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tc.fault(404, tc.validate(tok))
		tc.fault(401, tc.do("GET", v3+"auth/projects", tok, nil))
		tc.fault(401, tc.issue(tokenAuth(tok, nil)))
	}
	// A well-formed payload naming nobody is not found either.
	now := time.Now().UTC()
	ghost := tc.craftRaw(&payload{Methods: []string{"password"}, UserID: newID(), IssuedAt: now, ExpiresAt: now.Add(time.Hour), AuditIDs: []string{newAuditID()}})
	tc.fault(404, tc.validate(ghost))
	// Nor one for a real user with a project that does not exist.
	stray := tc.craftRaw(&payload{Methods: []string{"password"}, UserID: tc.userID("demo"), ProjectID: newID(), IssuedAt: now, ExpiresAt: now.Add(time.Hour), AuditIDs: []string{newAuditID()}})
	tc.fault(404, tc.validate(stray))
	// Nor a token issued in the future beyond the expiry it claims.
	backwards := tc.craftRaw(&payload{Methods: []string{"password"}, UserID: tc.userID("demo"), IssuedAt: now, ExpiresAt: now.Add(-time.Second), AuditIDs: []string{newAuditID()}})
	tc.fault(404, tc.validate(backwards))
}

// craftRaw encrypts a payload without resolving it.
func (tc *testCloud) craftRaw(p *payload) string {
	tc.t.Helper()
	tok, err := fernet.Encrypt(tc.keys.Primary(), p.marshal(), p.IssuedAt)
	if err != nil {
		tc.t.Fatal(err)
	}
	return tok
}
