package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
)

// payload is what a token carries inside its Fernet envelope: ids and times
// only, packed so that tokens stay under 255 characters. Roles, names and the
// catalog are looked up at validation.
type payload struct {
	Methods   []string
	UserID    string
	ProjectID string // project scope
	DomainID  string // domain scope
	System    bool   // system scope
	IssuedAt  time.Time
	ExpiresAt time.Time
	AuditIDs  []string // this token's, then its parent's when rescoped
	AppCredID string
}

const payloadVersion = 1

const (
	scopeNone byte = iota
	scopeProject
	scopeDomain
	scopeSystem
)

var methodBits = []string{"password", "token", "application_credential"}

var errPayload = errors.New("malformed token payload")

var auditEnc = base64.RawURLEncoding

func newAuditID() string {
	var b [16]byte
	rand.Read(b[:])
	return auditEnc.EncodeToString(b[:])
}

func (p *payload) marshal() []byte {
	b := make([]byte, 0, 112)
	scope := scopeNone
	switch {
	case p.ProjectID != "":
		scope = scopeProject
	case p.DomainID != "":
		scope = scopeDomain
	case p.System:
		scope = scopeSystem
	}
	var bits byte
	for i, m := range methodBits {
		for _, pm := range p.Methods {
			if pm == m {
				bits |= 1 << i
			}
		}
	}
	b = append(b, payloadVersion, scope, bits)
	b = binary.BigEndian.AppendUint64(b, uint64(p.IssuedAt.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(p.ExpiresAt.UnixMicro()))
	b = appendID(b, p.UserID)
	switch scope {
	case scopeProject:
		b = appendID(b, p.ProjectID)
	case scopeDomain:
		b = appendID(b, p.DomainID)
	}
	b = appendID(b, p.AppCredID)
	b = append(b, byte(len(p.AuditIDs)))
	for _, a := range p.AuditIDs {
		raw, _ := auditEnc.DecodeString(a)
		var fixed [16]byte
		copy(fixed[:], raw)
		b = append(b, fixed[:]...)
	}
	return b
}

// appendID packs a 32-hex id into 16 bytes (marked 0xff) and anything else
// (such as the domain "default") as a length-prefixed string.
func appendID(b []byte, id string) []byte {
	if len(id) == 32 {
		if raw, err := hex.DecodeString(id); err == nil && hex.EncodeToString(raw) == id {
			return append(append(b, 0xff), raw...)
		}
	}
	if len(id) >= 0xff {
		id = id[:0xfe] // ids are at most 64 characters; never reached
	}
	return append(append(b, byte(len(id))), id...)
}

func readID(b []byte) (string, []byte, error) {
	if len(b) < 1 {
		return "", nil, errPayload
	}
	if b[0] == 0xff {
		if len(b) < 17 {
			return "", nil, errPayload
		}
		return hex.EncodeToString(b[1:17]), b[17:], nil
	}
	n := int(b[0])
	if len(b) < 1+n {
		return "", nil, errPayload
	}
	return string(b[1 : 1+n]), b[1+n:], nil
}

func unmarshalPayload(b []byte) (*payload, error) {
	if len(b) < 19 || b[0] != payloadVersion {
		return nil, errPayload
	}
	p := &payload{}
	scope, bits := b[1], b[2]
	for i, m := range methodBits {
		if bits&(1<<i) != 0 {
			p.Methods = append(p.Methods, m)
		}
	}
	p.IssuedAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[3:11]))).UTC()
	p.ExpiresAt = time.UnixMicro(int64(binary.BigEndian.Uint64(b[11:19]))).UTC()
	rest := b[19:]
	var err error
	if p.UserID, rest, err = readID(rest); err != nil {
		return nil, err
	}
	switch scope {
	case scopeNone:
	case scopeProject:
		p.ProjectID, rest, err = readID(rest)
	case scopeDomain:
		p.DomainID, rest, err = readID(rest)
	case scopeSystem:
		p.System = true
	default:
		return nil, errPayload
	}
	if err != nil {
		return nil, err
	}
	if p.AppCredID, rest, err = readID(rest); err != nil {
		return nil, err
	}
	if len(rest) < 1 || len(rest) != 1+16*int(rest[0]) {
		return nil, errPayload
	}
	for i := 0; i < int(rest[0]); i++ {
		p.AuditIDs = append(p.AuditIDs, auditEnc.EncodeToString(rest[1+16*i:17+16*i]))
	}
	return p, nil
}
