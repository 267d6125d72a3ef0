"""BGP announcement of virtual servers (a director extension, conf/BGP.md): the pure
decision core, the engine interface (ExaBGP behind it), the speaker child and the LVS
child's link to it."""
