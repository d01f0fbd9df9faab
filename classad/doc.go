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
// strings, and integer division truncates toward zero. MY, TARGET and
// PARENT are scope names (PARENT is the ad enclosing a nested ad, or else
// the chained parent ad); quote them ('my') to name an attribute.
//
// # Where HTCondor's manual and implementation differ
//
// The implementation (what condor_q and the negotiator do) wins for:
// int(), real(), string(), toUpper(), toLower(), strcat(), strcmp() and
// stricmp() of undefined are undefined (the manual says error);
// isBoolean() tests for the boolean type; =?= between lists or ads is
// error; unary minus of a boolean is error; interval(1472523) is
// "17+01:02:03".
//
// The manual wins where the implementation looks accidental: sum() and
// avg() of only undefined elements are undefined; min() and max() are
// real when any element is; stringListAvg() is always real and
// stringListMax() of negative numbers is right; anyCompare() keeps
// looking past an undefined comparison; pow() of integers is exact;
// quantize() of a negative number rounds up.
//
// Choices where HTCondor has none: integer literals are decimal (HTCondor
// daemons refuse octal and hexadecimal too); a real division by zero or
// an overflow is error; shifting by a negative count is error, by 64 or
// more empties the value; reals print with the fewest digits that read
// back exactly, in %G style (3.5, 1E+30), in every syntax, so string(2.5)
// is "2.5"; regular expressions are Go's RE2 (no back-references or
// look-around: such patterns are error, as are patterns that compile to
// more than 5000 instructions); an absTime("...") literal
// without a zone is UTC. The old syntax cannot write a string that ends in
// a backslash or holds a quote followed by a line break (HTCondor cannot
// either); LongString writes such strings as they are.
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
