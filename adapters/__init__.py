"""Platform adapters: each turns one platform into InboundMessage and back."""
