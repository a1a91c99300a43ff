package main

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/linesight/linesight/internal/cli"
)

// userCmd: linesight user hash — reads a password on stdin, prints its bcrypt
// hash for review.users[].password_hash.
func userCmd(ctx context.Context, stdio Stdio, args []string) error {
	if len(args) == 0 || args[0] != "hash" {
		return cli.Usagef("usage: linesight user hash < password-file   (prints a bcrypt hash for review.users[].password_hash)")
	}
	fs := newFlags("user hash", stdio)
	cost := fs.Int("cost", 12, "bcrypt cost (10-14 are sensible; each step doubles the work)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		return cli.Usagef("-cost %d is out of range; allowed: %d to %d", *cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	line, err := bufio.NewReader(stdio.In).ReadString('\n')
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		if err != nil && err.Error() != "EOF" {
			return fmt.Errorf("read password: %w", err)
		}
		return cli.Usagef("no password on standard input; try: printf '%%s' 'the password' | linesight user hash")
	}
	if len(pw) < 8 {
		return cli.Usagef("password is %d characters; use at least 8", len(pw))
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), *cost)
	if err != nil {
		return cli.Usagef("hash password: %w", err)
	}
	fmt.Fprintln(stdio.Out, string(h))
	return nil
}
