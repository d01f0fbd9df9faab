// Package classad implements HTCondor's ClassAd language: values,
// expressions, ads, matchmaking and the three ways ads are written (new
// syntax "[ A = 1; B = "x" ]", the old "Name = value" lines of
// condor_q -long, and condor_q -json). The schedd, negotiator and startd
// use it for job and machine ads, Requirements and Rank, policy
// expressions and -constraint; cmd/vmpool uses it for condor_submit,
// condor_q -analyze and "vmpool classad". It imports nothing of this
// project and only the standard library.
//
// # Semantics
//
// Evaluation follows HTCondor (REFERENCE.md §9 and the HTCondor manual):
// names are case-insensitive; a bare name is looked up in MY, then in the
// ads enclosing a nested ad, then in TARGET (unless EvalOptions.Strict);
// MY.x and TARGET.x look in one ad only; a missing attribute is
// undefined; a reference cycle is error. Operators are strict in error
// and undefined except && || ?: =?= =!= and the conditional, booleans
// count as 1 and 0 in arithmetic and comparison, == ignores the case of
// strings, and integer division truncates toward zero. Where HTCondor's
// implementation and manual disagree, the implementation wins (for
// example strcat and int of undefined are undefined); the exceptions are
// listed in the tests.
//
// # Compilation and evaluation
//
// ParseExpr compiles source once into an immutable tree whose attribute
// names are lower-cased and hashed ahead of time; ads index attributes in
// an open-addressing table keyed by that hash. Evaluating a tree needs no
// parsing and, for comparisons, logic and attribute references, no
// allocation. Every evaluation is bounded (EvalOptions.MaxSteps, a
// recursion limit, a cap on string sizes), and parsing refuses input
// nested more than 1000 levels deep, so no input can hang, exhaust memory
// or overflow the stack.
//
// time(), CurrentTime and random() read the clock and random source in
// EvalOptions; without them they are error. The package holds no global
// mutable state.
//
// # Concurrency
//
// Expressions are immutable and values are immutable: both may be used
// from any number of goroutines. Evaluating the same ads concurrently is
// safe; modifying an ad (Set, Delete, SetParent) must not overlap any
// other use of it, nor any use of an ad chained to it.
package classad
