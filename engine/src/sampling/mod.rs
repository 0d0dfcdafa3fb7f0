//! Diffusion decoding: reference samplers and fast parallel decoding.
