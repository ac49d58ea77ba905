"""function-hello: an example composition function written with crossplane-function-sdk-python."""
