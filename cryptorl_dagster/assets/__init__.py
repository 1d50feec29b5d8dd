"""Software-defined assets, one module per pipeline stage; checks live beside their asset."""
