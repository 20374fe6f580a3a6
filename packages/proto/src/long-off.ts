import $protobuf from 'protobufjs/minimal.js'

// uint64 fields decode to plain numbers: without Long, protobufjs' Reader returns numbers (exact
// up to 2^53, far above any byte size or millisecond timestamp we carry). This module must be
// evaluated before the generated code, whose prototype defaults (the value of an absent field)
// are built at load time: with Long still on they would be Long{0,0}, not 0.
;($protobuf.util as { Long: unknown }).Long = undefined
$protobuf.configure()
