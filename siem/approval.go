package siem

import (
	"cmp"
	"strconv"
	"strings"

	"github.com/mcptrail/mcptrail/store"
)

// How each format carries the events of a call held for approval
// (approval_requested, approved, denied, expired): one table, read by
// every encoder.
//
// OCSF: API Activity (6003), activity 99 named by the kind; status
// Unknown while held, Success when approved, Failure when denied or
// expired (severity Medium); the approval object in unmapped.
// ECS: event.type info while held, allowed, denied; event.outcome
// unknown, success, failure.
// CEF: class id the kind, Name from the table, severity 5 (a person's
// decision about a dangerous call) or 7 when refused.

type approvalMapping struct {
	name       string // CEF Name: stable per kind
	statusID   int    // OCSF status_id
	status     string // OCSF status
	ecsType    string
	ecsOutcome string
	refused    bool // the call was not run: severity as a denied call
}

var approvalKinds = map[string]approvalMapping{
	store.KindApprovalRequested: {"Call held for approval", 0, "Unknown", "info", "unknown", false},
	store.KindApproved:          {"Held call approved", 1, "Success", "allowed", "success", false},
	store.KindDenied:            {"Held call denied", 2, "Failure", "denied", "failure", true},
	store.KindExpired:           {"Held call expired", 2, "Failure", "denied", "failure", true},
}

// approvalOf is the mapping of an approval event.
func approvalOf(ev *store.Event) (approvalMapping, bool) {
	m, ok := approvalKinds[ev.Kind]
	return m, ok
}

// approvalRefused: a denied or expired approval event.
func approvalRefused(ev *store.Event) bool {
	m, ok := approvalOf(ev)
	return ok && m.refused
}

// approvalMessage is the one-line summary of an approval event.
func approvalMessage(ev *store.Event) string {
	call := "call " + strconv.FormatUint(ev.Call, 10) + " (" + ev.Upstream + "/" + ev.Tool + ")"
	a := ev.Approval
	if a == nil {
		a = &store.Approval{}
	}
	by := ""
	if ev.Authorization != nil && ev.Authorization.Approver != "" {
		by = " by " + ev.Authorization.Approver
	}
	switch ev.Kind {
	case store.KindApprovalRequested:
		return call + " held for approval by rule " + a.Rule
	case store.KindApproved:
		return call + " approved" + by + " (" + strconv.Itoa(len(a.Approvers)) + " of " + strconv.Itoa(a.Required) + ")"
	case store.KindDenied:
		s := call + " denied" + by
		if a.Reason != "" {
			s += ": " + a.Reason
		}
		return s
	}
	return call + " " + strings.ReplaceAll(ev.Kind, "_", " ") + ": " + cmp.Or(ev.Detail, "no decision")
}
