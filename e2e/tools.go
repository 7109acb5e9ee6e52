//go:build tools

// This file is never compiled. It names the programs the end-to-end harness
// builds from module dependencies (harness_test.go, programs), so that
// `go mod tidy` keeps what they need in go.mod and go.sum.
package e2e

import (
	_ "github.com/modelcontextprotocol/go-sdk/conformance/everything-server"
)
