// Package soak holds a bounded soak test of the built mcptrail daemon
// (soak_test.go): sustained concurrent MCP sessions through `mcptrail serve`
// with SIEM sinks on and a rollback midway, while the daemon's memory, file
// descriptors and goroutines are sampled and must stay flat, and every call
// must reach the record and every event the sinks. The package has no code
// outside its tests; see README.md for the long form.
package soak
