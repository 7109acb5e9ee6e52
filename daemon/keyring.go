package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/mcptrail/mcptrail/internal/authkeys"
	"github.com/mcptrail/mcptrail/internal/safefile"
	"github.com/mcptrail/mcptrail/ui"
)

// keyring is the console's authorized_keys file, read afresh at every
// lookup as sshd reads it at every login: adding or revoking a key, or
// changing its options, takes effect at the next connection.
//
// The file is OpenSSH's format and its options mean what they mean to
// sshd (package authkeys): from=, expiry-time=, no-pty/restrict/pty;
// command= and options the console does not know refuse the line. A role
// comes only from what the operator wrote — environment="MCPTRAIL_ROLE=…"
// on the line, or the config's ssh_roles by fingerprint — never from the
// key's comment, which the key's owner chose (ssh-keygen -C).
type keyring struct {
	path  string
	roles atomic.Pointer[map[string]string] // fingerprint → role, from the config (swapped on reload)
	log   *slog.Logger
	now   func() time.Time

	mu     sync.Mutex
	warned map[string]bool // comment-role lines already logged
}

func newKeyring(path string, roles map[string]string, log *slog.Logger) *keyring {
	k := &keyring{path: path, log: log, now: time.Now, warned: map[string]bool{}}
	k.setRoles(roles)
	return k
}

// setRoles makes roles the config's ssh_roles from the next lookup on.
func (k *keyring) setRoles(roles map[string]string) { k.roles.Store(&roles) }

// keyEntry is the line that let a key in.
type keyEntry struct {
	file  string
	line  int
	rules authkeys.Rules
	role  ui.Role
}

// lookup finds the first line for key whose options let it in from
// remote now. Like sshd, a line that does not (wrong from=, expired,
// refused options) is passed over, and a later line for the same key may
// still match. While the file is unsafe (StrictModes), no key gets in.
func (k *keyring) lookup(key gossh.PublicKey, remote net.Addr) (keyEntry, bool) {
	if key == nil {
		return keyEntry{}, false
	}
	fp := gossh.FingerprintSHA256(key)
	f, err := safefile.Open(k.path, safefile.Public)
	if err == nil {
		err = safefile.CheckPath(k.path, safefile.Public) // and its directory
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		if !errors.Is(err, os.ErrNotExist) {
			k.log.Warn("SSH console: authorized_keys is not safe to trust, so no key in it gets in", "err", err, "fingerprint", fp)
		}
		return keyEntry{}, false
	}
	defer f.Close()
	addr := ""
	if ta, ok := remote.(*net.TCPAddr); ok {
		addr = ta.IP.String()
	} else if remote != nil {
		addr, _, _ = net.SplitHostPort(remote.String())
	}
	want := string(key.Marshal())
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pk, comment, options, _, err := gossh.ParseAuthorizedKey([]byte(line))
		if err != nil || string(pk.Marshal()) != want {
			continue
		}
		where := []any{"file", k.path, "line", n, "fingerprint", fp}
		rules, err := authkeys.Parse(options, time.Local)
		if err != nil {
			k.log.Warn("SSH console: authorized_keys line refused", append(where, "err", err.Error())...)
			continue
		}
		if rules.From != "" && !authkeys.FromAllows(rules.From, addr) {
			k.log.Warn("SSH console: key refused: the client's address is not in the line's from= list", append(where, "from", rules.From, "remote", addr)...)
			continue
		}
		if rules.Expired(k.now()) {
			k.log.Warn("SSH console: key refused: its expiry-time has passed", append(where, "expired", rules.Expiry.Format(time.RFC3339))...)
			continue
		}
		role := k.role(rules.Role, fp, where)
		k.commentRole(comment, n, where)
		return keyEntry{file: k.path, line: n, rules: rules, role: role}, true
	}
	return keyEntry{}, false
}

// role is the line's environment= role or the config's, viewer by
// default. When both are given and differ, the lesser one holds.
func (k *keyring) role(fromLine, fp string, where []any) ui.Role {
	fromConfig := (*k.roles.Load())[fp]
	parse := func(raw, source string) ui.Role {
		switch ui.Role(raw) {
		case "", ui.RoleViewer:
			return ui.RoleViewer
		case ui.RoleOperator:
			return ui.RoleOperator
		}
		k.log.Warn(fmt.Sprintf("SSH console: unknown role %q in %s (want operator or viewer); treated as viewer", raw, source), where...)
		return ui.RoleViewer
	}
	a, b := parse(fromLine, "environment="+authkeys.RoleVar), parse(fromConfig, "ssh_roles")
	if fromLine != "" && fromConfig != "" && a != b {
		k.log.Warn("SSH console: authorized_keys and ssh_roles give this key different roles; it gets viewer", where...)
		return ui.RoleViewer
	}
	if a == ui.RoleOperator || b == ui.RoleOperator {
		return ui.RoleOperator
	}
	return ui.RoleViewer
}

// commentRole logs, once per line, a role= word left in a key's comment:
// earlier versions read roles from there, and an operator upgrading should
// learn that it no longer counts rather than find out from a denied mark.
func (k *keyring) commentRole(comment string, n int, where []any) {
	for _, w := range strings.Fields(comment) {
		if strings.HasPrefix(w, "role=") {
			id := fmt.Sprintf("%s:%d:%s", k.path, n, w)
			k.mu.Lock()
			seen := k.warned[id]
			k.warned[id] = true
			k.mu.Unlock()
			if !seen {
				k.log.Warn(fmt.Sprintf("SSH console: %q in a key's comment is ignored (the key's owner writes the comment); give the role with environment=\"%s=operator\" or ssh_roles", w, authkeys.RoleVar), where...)
			}
			return
		}
	}
}
