// One server at a time: the descriptor test counts the process's descriptors, and the machine has two cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
