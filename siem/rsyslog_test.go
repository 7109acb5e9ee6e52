package siem

import (
	"fmt"
	"testing"
	"time"

	"github.com/mcptrail/mcptrail/siem/siemtest"
)

func TestRsyslogReceivesEverythingAcrossARestart(t *testing.T) {
	for _, format := range []Format{FormatCEF, FormatJSONL} {
		t.Run(string(format), func(t *testing.T) {
			rs := siemtest.StartRsyslog(t)
			st := openStore(t, "strict")
			appendCalls(t, st, 100)
			wire := string(format)
			if format == FormatJSONL {
				wire = "json"
			}
			f := newTestForwarder(t, st, fmt.Sprintf("syslog+tcp://%s?format=%s&settle=500ms&batch=50", rs.Addr(), wire), nil)
			f.Start()
			defer f.Stop(0)
			waitFor(t, "the first 200 events in rsyslog", 30*time.Second, func() bool {
				return len(rs.Messages()) >= 200 && f.Status().Cursor == 200
			})
			checkAtLeastOnceInOrder(t, parseSyslogSeqs(t, rs.Messages(), format), 200)

			// rsyslog goes away; calls go on.
			rs.Stop()
			appendCalls(t, st, 100)
			waitFor(t, "the forwarder to notice", 30*time.Second, func() bool { return f.Status().Failures > 0 })
			if c := f.Status().Cursor; c > 200 {
				t.Fatalf("cursor moved to %d while rsyslog was down", c)
			}
			appendCalls(t, st, 50)

			rs.Start()
			waitFor(t, "all 500 events in rsyslog", 60*time.Second, func() bool { return f.Status().Cursor == 500 })
			f.Stop(time.Second)
			seqs := parseSyslogSeqs(t, rs.Messages(), format)
			checkAtLeastOnceInOrder(t, seqs, 500)
			t.Logf("%d messages for 500 events (%d duplicates from replays)", len(seqs), len(seqs)-500)
		})
	}
}

// rsyslog stops and starts while events are flowing: what was on the wire
// when it stopped is sent again.
func TestRsyslogStopMidStream(t *testing.T) {
	rs := siemtest.StartRsyslog(t)
	st := openStore(t, "strict")
	f := newTestForwarder(t, st, fmt.Sprintf("syslog+tcp://%s?format=cef&settle=500ms&batch=10", rs.Addr()), nil)
	f.Start()
	defer f.Stop(0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			appendCalls(t, st, 5)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := 0; i < 3; i++ {
		time.Sleep(300 * time.Millisecond)
		rs.Stop()
		time.Sleep(200 * time.Millisecond)
		rs.Start()
	}
	close(stop)
	<-done
	total := st.Stats().Events
	waitFor(t, "everything in rsyslog", 60*time.Second, func() bool { return f.Status().Cursor == total })
	f.Stop(time.Second)
	seqs := parseSyslogSeqs(t, rs.Messages(), FormatCEF)
	checkAtLeastOnceInOrder(t, seqs, total)
	t.Logf("%d messages for %d events (%d duplicates from replays)", len(seqs), total, len(seqs)-int(total))
}
