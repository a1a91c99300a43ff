//go:build !linux

package affinity

// Allowed is the CPUs the calling thread may run on.
func Allowed() ([]int, error) { return nil, ErrUnsupported }

// PinThread restricts the calling OS thread to cpus.
func PinThread(cpus []int) error { return ErrUnsupported }

// Exclude takes cpus out of the affinity of every thread of this process
// except keep.
func Exclude(cpus []int, keep ...int) (int, error) { return 0, ErrUnsupported }

// ThreadID is the calling OS thread's ID (0 here).
func ThreadID() int { return 0 }

// Choose resolves a model.cpus value to CPUs (a list as written; Auto is
// unsupported here).
func Choose(spec string, n int) ([]int, error) {
	if spec != Auto {
		return Parse(spec)
	}
	return nil, ErrUnsupported
}

// Reset sets the affinity of every thread of this process to cpus.
func Reset(cpus []int) error { return ErrUnsupported }

// Threads is every live thread of process pid (0: this one) with the CPUs
// it may run on.
func Threads(pid int) (map[int][]int, error) { return nil, ErrUnsupported }

// Reserve moves every thread of this process off cpus.
func Reserve(cpus []int) (release func() error, moved int, err error) {
	return nil, 0, ErrUnsupported
}
