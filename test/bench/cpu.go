package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat
// (sysconf(_SC_CLK_TCK), 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuUse is the CPU time (user and system) the processes of one run used
// during phase 1: the API server and etcd this benchmark started, this
// benchmark's own process (which creates the objects, watches them and,
// in the baseline's run, is the baseline), and the manager. On a machine
// whose CPUs are saturated, the time to all Ready follows their sum.
type cpuUse struct {
	apiserver, etcd, bench, manager time.Duration
}

func (c cpuUse) total() time.Duration { return c.apiserver + c.etcd + c.bench + c.manager }

func (c cpuUse) sub(b cpuUse) cpuUse {
	return cpuUse{apiserver: c.apiserver - b.apiserver, etcd: c.etcd - b.etcd, bench: c.bench - b.bench, manager: c.manager - b.manager}
}

// msPer is d in milliseconds per object of n.
func msPer(d time.Duration, n int) float64 { return per(float64(d.Microseconds())/1000, float64(n)) }

// perObject gives the milliseconds of CPU per object of n, each process and their total.
func (c cpuUse) perObject(n int) string {
	return fmt.Sprintf("%.2f / %.2f / %.2f / %.2f (total %.2f)", msPer(c.apiserver, n), msPer(c.etcd, n), msPer(c.bench, n),
		msPer(c.manager, n), msPer(c.total(), n))
}

// sampleCPU reads the CPU time used so far by this process, by its
// children named kube-apiserver and etcd, and by managerPID (0: none).
func sampleCPU(managerPID int) cpuUse {
	var c cpuUse
	self := os.Getpid()
	c.bench, _ = procCPU(self)
	if managerPID > 0 {
		c.manager, _ = procCPU(managerPID)
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		comm, ppid, cpu, ok := readStat(path)
		if !ok || ppid != self {
			continue
		}
		switch comm {
		case "kube-apiserver":
			c.apiserver += cpu
		case "etcd":
			c.etcd += cpu
		}
	}
	return c
}

func procCPU(pid int) (time.Duration, bool) {
	_, _, cpu, ok := readStat(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	return cpu, ok
}

// readStat parses comm, ppid, utime and stime of /proc/<pid>/stat
// (proc(5)): comm is in parentheses and may hold spaces, the rest follows
// its closing one.
func readStat(path string) (comm string, ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, 0, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	f := strings.Fields(s[end+1:])
	// f[0] is the state (field 3), f[1] ppid (4), f[11] utime (14), f[12] stime (15).
	if len(f) < 13 {
		return "", 0, 0, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseInt(f[11], 10, 64)
	st, err3 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", 0, 0, false
	}
	return s[open+1 : end], ppid, time.Duration(ut+st) * clockTick, true
}
