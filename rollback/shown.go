package rollback

// What a person sees of a plan and what runs are kept apart here. A
// pre-state holds the resource exactly as it was, secrets included: a
// restore must write those bytes back, not "[REDACTED:…]". Everything
// built from it for people — a step's current and restored text, its
// diff, the inverse calls' arguments as the plan stores and shows them, a
// history's versions — goes through the gateway's redaction hook, the one
// that masks secrets in the record. The exact arguments are rendered again
// from the pre-state when the plan is applied, and run only if they hash
// to what the plan recorded when it was built (InverseCall.ArgsSHA256).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// RedactFunc masks secrets in a JSON value: the gateway's hook
// (ingest.Hooks.Redact). nil masks nothing.
type RedactFunc func(json.RawMessage) json.RawMessage

// text masks the secrets inside s, a string a person will read.
func (r RedactFunc) text(s string) string {
	if r == nil || s == "" {
		return s
	}
	b, err := json.Marshal(s)
	if err != nil {
		return s
	}
	var out string
	if err := json.Unmarshal(r(b), &out); err != nil {
		// The hook broke its value: show nothing rather than the secret.
		return "[not shown: it could not be redacted]"
	}
	return out
}

// args masks the secrets inside a call's arguments.
func (r RedactFunc) args(raw json.RawMessage) json.RawMessage {
	if r == nil || len(raw) == 0 {
		return raw
	}
	return r(raw)
}

// argsDigest names exact arguments without holding them.
func argsDigest(raw json.RawMessage) string {
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// shownCalls are calls as a plan stores and shows them: arguments masked,
// with the digest of the exact ones.
func (r RedactFunc) shownCalls(calls []InverseCall) []InverseCall {
	out := make([]InverseCall, len(calls))
	for i, c := range calls {
		out[i] = InverseCall{Tool: c.Tool, Args: r.args(c.Args), ArgsSHA256: argsDigest(c.Args)}
	}
	return out
}

// setDiff sets a step's two sides, masked, and the diff between them.
func (r RedactFunc) setDiff(st *Step, cur, rest string) {
	st.Current, st.Restored = r.text(cur), r.text(rest)
	st.Diff = unifiedDiff(st.Current, st.Restored)
}
