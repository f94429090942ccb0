package process

import (
	"syscall"
	"unsafe"
)

// pendingBytes returns how many bytes wait unread in the pipe fd.
func pendingBytes(fd uintptr) int64 {
	var n int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); errno != 0 {
		return 0
	}
	return int64(n)
}
