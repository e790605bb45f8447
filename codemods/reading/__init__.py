"""Reading a handler with the standard library: its shape, its layout, known breakage, script damage."""
