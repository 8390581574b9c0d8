//go:build !wasip1

package kernel

import (
	"bytes"
	"testing"
)

// The fake kernel is one package-level memory, so these tests do not run in parallel.

func reset(input []byte) {
	fake.Lock()
	defer fake.Unlock()
	fake.input, fake.output, fake.errMsg, fake.logs, fake.calls = input, nil, "", nil, 0
}

func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func TestInputCopiesEightBytesAtATime(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 1000, 4099} {
		in := payload(n)
		reset(in)
		got := Input()
		if !bytes.Equal(got, in) {
			t.Fatalf("n=%d: input differs", n)
		}
		// input_length + ceil(n/8) u64 loads for n >= 8, n byte loads below.
		want := 1 + (n+7)/8
		if n < 8 {
			want = 1 + n
		}
		if fake.calls != want {
			t.Errorf("n=%d: %d kernel calls, want %d", n, fake.calls, want)
		}
	}
}

func TestStoreLoadRoundTrip(t *testing.T) {
	for _, n := range []int{1, 5, 8, 13, 64, 1001} {
		reset(nil)
		b := payload(n)
		p := Store(b)
		if got := Load(p); !bytes.Equal(got, b) {
			t.Fatalf("n=%d: round trip differs", n)
		}
		Free(p)
		if _, ok := fake.blocks[p]; ok {
			t.Fatalf("n=%d: block not freed", n)
		}
	}
	if Store(nil) != 0 || Load(0) != nil {
		t.Fatal("empty block is not the null block")
	}
	Free(0) // must not panic
}

func TestOutputErrorLog(t *testing.T) {
	reset(nil)
	SetOutput([]byte(`{"ok":true}`))
	SetError("")
	Log(Warn, "careful")
	if string(fake.output) != `{"ok":true}` {
		t.Errorf("output = %q", fake.output)
	}
	if fake.errMsg != "error without message" {
		t.Errorf("error = %q", fake.errMsg)
	}
	if len(fake.logs) != 1 || fake.logs[0] != "warn careful" {
		t.Errorf("logs = %q", fake.logs)
	}
	SetOutput(nil)
	if fake.output != nil {
		t.Errorf("empty output = %q", fake.output)
	}
}
