package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// procs are the processes this command started; it stops them all on exit.
type procs []*exec.Cmd

func (p *procs) start(ctx context.Context, dir, name, path string, args, env []string) error {
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	*p = append(*p, cmd)
	return nil
}

func (p procs) stopAll() {
	for _, cmd := range p {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, cmd := range p {
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	}
}

// ready reports whether url answers 2xx.
func ready(url string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode < 300
}

// waitReady polls each URL until it answers or 30 s pass.
func waitReady(ctx context.Context, urls ...string) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range urls {
		for !ready(u) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not become ready", u)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}
