package webssh

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawRead and rawWrite read and write a non-blocking fd without telling
// the runtime of the syscall (RawSyscall): a syscall the runtime knows of
// wakes its sysmon thread when the process was idle, which is how a
// keystroke finds it, so the keystroke's first syscall would pay a futex
// wake-up of another thread, on the CPU the shell or the client needs.
// Only for syscalls that cannot block and are short: a non-blocking fd,
// a small buffer.
func rawRead(fd int, p []byte) (int, error) { return rawIO(unix.SYS_READ, fd, p) }

func rawWrite(fd int, p []byte) (int, error) { return rawIO(unix.SYS_WRITE, fd, p) }

// rawIO is read(2) or write(2), by trap, of p on fd, again on EINTR.
func rawIO(trap uintptr, fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(n), nil
	}
}

// rawYield gives the CPU to another runnable thread, if there is one.
func rawYield() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
