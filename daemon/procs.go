package daemon

// Procs is how many threads may run the daemon's Go code at once
// (GOMAXPROCS) when nothing says otherwise: half of what Go would take
// (the CPUs it may use, cgroup limits included), at least one. It returns
// 0, meaning Go's own choice, when the environment sets GOMAXPROCS or when
// the daemon collects a fleet's records.
//
// Why: a gateway runs on the machine of the agents and servers it stands
// between, and does little per call; with a P per CPU, every hand-off of
// a call wakes an idle P's thread that spins looking for work, and that
// spinning takes cycles from the client and the server on the same cores.
// On the 2-core machine of BENCHMARKS.md ("Floors"), GOMAXPROCS=1 cut the
// daemon's CPU per call by 10–25 % and raised serve's calls/s at 32
// sessions by 12–17 %. A collector is a machine of its own: it keeps them
// all.
func Procs(collecting bool, envGOMAXPROCS string, goDefault int) int {
	if collecting || envGOMAXPROCS != "" {
		return 0
	}
	return max(1, goDefault/2)
}
