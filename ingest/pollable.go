package ingest

import (
	"os"

	"golang.org/x/sys/unix"
)

// Pollable returns a file for f that Go's poller waits on, when f is a pipe
// or a socket in blocking mode — wrap's stdin and stdout, as MCP clients
// start it. Read from a blocking descriptor, each message parks a thread in
// read(2) and hands its P to another, and the runtime's monitor thread,
// retaking Ps, kept waking every 20 µs: a quarter of wrap's CPU per call in
// the batch benchmark. Anything else (a terminal, a file) comes back as it
// is. restore closes the new file and puts the descriptor back in blocking
// mode, for whoever shares it after wrap.
//
// The new file is a duplicate of f's descriptor, so closing it leaves f's
// alone; both share the mode, so f must not be used meanwhile.
func Pollable(f *os.File) (pf *os.File, restore func()) {
	noop := func() {}
	fd := int(f.Fd())
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return f, noop
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFIFO && t != unix.S_IFSOCK {
		return f, noop
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		return f, noop
	}
	nfd, err := unix.Dup(fd)
	if err != nil {
		return f, noop
	}
	unix.CloseOnExec(nfd)
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return f, noop
	}
	pf = os.NewFile(uintptr(nfd), f.Name())
	return pf, func() {
		pf.Close()
		unix.SetNonblock(fd, false)
	}
}
