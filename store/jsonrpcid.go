package store

import "encoding/json"

// JSONRPCIDText is an event's JSON-RPC id (Event.JSONRPCID) as text, for
// the SIEM formats and the traces alike: a string id without its quotes, a
// number as written; "" when there is none.
func JSONRPCIDText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}
