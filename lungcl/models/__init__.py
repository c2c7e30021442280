"""Networks: the pre-activation ResNet (``resnet``) and the gated multi-task network (``gated``)."""
