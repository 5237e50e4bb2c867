"""Models shared by the experiments: batched MLPs and layers with a leading model axis, deep nets from named parts, the §3 convnet."""
